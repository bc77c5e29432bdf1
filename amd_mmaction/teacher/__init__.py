from amd_mmaction.teacher.frozen import FrozenTeacher

__all__ = ['FrozenTeacher']
