from models.training.train import cli

cli()
