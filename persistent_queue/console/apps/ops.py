"""Ops console: ``pq console ops`` runs ``streamlit run`` on this file (database from PQ_DB)."""

from persistent_queue.console.ops import main

main()
