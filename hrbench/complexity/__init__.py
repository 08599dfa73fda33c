"""Complexity engine: #Params and FLOPs under each counting convention (paper, analytic,
fvcore, ptflops, true MACs)."""
