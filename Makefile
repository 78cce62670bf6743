# The README's commands, for those who like make.
.PHONY: build test quickstart

build:
	./xcaddy.sh

test:
	./scripts/test.sh

quickstart:
	./quickstart.sh
