"""`python -m bot.cli ...`: the same as the `lesbot` command."""
from bot.cli.main import main

main()
