"""`mlops`: one command for each thing people do with the platform (review models, watch and answer a
deployment, run a batch, run pipelines), named after config/<env>.yaml as the stacks are.

Imports boto3, click, rich and config/ only: it installs and runs without Node or aws-cdk-lib.
"""
