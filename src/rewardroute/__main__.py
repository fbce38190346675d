"""`python -m rewardroute`: the same as the `rewardroute` command."""

from .cli import main

if __name__ == "__main__":
    main()
