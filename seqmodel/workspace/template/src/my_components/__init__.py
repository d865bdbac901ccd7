"""Your components: name them by qualified path, e.g. `--encoder=my_components.encoders:ConvEncoder`."""
