# python -m dlms_micro_cpython ...: the dlms-micro command
import sys

from dlms_micro_cpython.cli import main

sys.exit(main())
