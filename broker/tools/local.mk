# broker/tools/: command-line tools built on the codec.
