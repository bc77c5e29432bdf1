from .checkpoint import load_encoder_weights, read_checkpoint, to_encoder_state
from .frozen import FrozenTeacher

__all__ = ['FrozenTeacher', 'load_encoder_weights', 'read_checkpoint',
           'to_encoder_state']
