"""Example components for seqmodel: `--encoder=my_encoders.conv:DilatedConvEncoder`."""
