"""The yujing command line: one module per command group; app.py gathers them."""
