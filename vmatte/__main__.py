import sys

from vmatte.cli import main

sys.exit(main())
