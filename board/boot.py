# Runs first on every reset. Kept minimal: a board that cannot import the
# meter still boots to the REPL. The meter starts from main.py.
import gc

gc.collect()
