import sys

from platebridge.portal.cli import main

sys.exit(main())
