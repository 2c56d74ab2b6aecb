"""The microscope: every filter of every layer of a CNN, rendered into a static atlas."""
