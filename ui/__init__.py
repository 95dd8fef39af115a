"""User interfaces: the `cypherloop` command line and the Gradio chat."""
