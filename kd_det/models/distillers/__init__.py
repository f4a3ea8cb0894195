from .decoupled_cosine_distiller import DecoupledCosineDistiller

__all__ = ['DecoupledCosineDistiller']
