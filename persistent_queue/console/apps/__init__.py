"""The Streamlit entry scripts of the consoles, run by ``pq console ops|admin``.

Each is a file that ``streamlit run`` executes; they hold no code of their own.
"""
