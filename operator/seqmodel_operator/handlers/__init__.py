"""kopf handlers, one module per resource kind; main.py wires them."""
