"""Admin console: ``pq console admin`` runs ``streamlit run`` on this file (database from
PQ_DB)."""

from persistent_queue.console.admin import main

main()
