"""stub"""
DERIVATIONS = ()
