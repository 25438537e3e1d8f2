"""Admin console: ``streamlit run admin_console.py --server.port 8502`` (database from PQ_DB)."""

from persistent_queue.console.admin import main

main()
