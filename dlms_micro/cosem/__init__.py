# COSEM layer: the static object table and interface-class behaviour.
# See base.py for the contract between the xDLMS services and the classes.
