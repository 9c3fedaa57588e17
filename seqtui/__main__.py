"""`python -m seqtui` is the `seqtui` command."""

from seqtui.cli import main

if __name__ == "__main__":
    main()
