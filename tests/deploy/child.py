"""A stand-in child process for the supervisor's tests: `python -m tests.deploy.child <seconds> <exit code>`
lives that long, then exits with that code."""

import sys
import time

if __name__ == "__main__":
    time.sleep(float(sys.argv[1]))
    sys.exit(int(sys.argv[2]))
