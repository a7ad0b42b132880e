"""Inference in SageMaker's request and response formats."""
