"""Model building blocks and backbones, one module per paper family."""
