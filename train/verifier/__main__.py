"""`python -m train.verifier`: see `train.verifier.fit`."""

import sys

from train.verifier.fit import main

sys.exit(main())
