"""Data: image files (images), folder layouts (layouts), augmentation (transforms), torch datasets (datasets)."""
