"""Pure domain code: data readers, profiling, recipes, AutoML, evaluation, narratives.

Nothing here performs I/O of its own beyond what it is handed, and nothing imports
storage, services, jobs or any transport.
"""
