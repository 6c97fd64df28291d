# Application layer: ACSE associations and xDLMS services (LN referencing).
