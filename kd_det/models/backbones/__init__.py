from .slim_mobilenet_v2 import SlimMobileNetV2

__all__ = ['SlimMobileNetV2']
