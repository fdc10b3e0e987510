__version__ = "0.1.0"

import logging as _logging
# pyiqa pulls in bitsandbytes, whose CPU backend logs a warning about an optional kernel package on import; it concerns
# 4-bit quantisation, which rsworkbench never uses
_logging.getLogger('bitsandbytes.backends.cpu.ops').setLevel(_logging.ERROR)
