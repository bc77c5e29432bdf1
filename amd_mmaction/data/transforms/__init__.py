"""Clip transforms that are not about masks (masks live in
:mod:`amd_mmaction.masks`)."""
from amd_mmaction.data.transforms.randaugment import VideoRandAugment
from amd_mmaction.data.transforms.repeat import RepeatedAugment

__all__ = ['RepeatedAugment', 'VideoRandAugment']
