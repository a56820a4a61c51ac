"""Using a trained run: prediction and streaming sessions, the HTTP service, ONNX export.
Never imports the training package (an import-linter contract)."""
