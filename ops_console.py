"""Ops console: ``streamlit run ops_console.py --server.port 8501`` (database from PQ_DB)."""

from persistent_queue.console.ops import main

main()
