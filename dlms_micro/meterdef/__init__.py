# Meter definitions, the run-time half: build a Meter from a compiled
# definition (a module of constants made by `dlms-micro meter compile`, or the
# same constants the CPython loader makes from the JSON). See build.py and
# docs/meter-definition.md.
