"""The segmentation stage: models, their recipes, inference and the VOC submission."""
