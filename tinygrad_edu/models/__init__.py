"""Models built on the engine: the worked example's text-colour network and VGG16."""
