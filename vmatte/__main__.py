from vmatte.cli import main
import sys
sys.exit(main())
