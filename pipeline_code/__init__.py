"""SageMaker Pipeline definitions, one folder each: ``<name>/pipeline.py`` plus its step scripts."""
