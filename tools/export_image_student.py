"""Export an AMD image student for mmaction2 fine-tuning / linear probing,
keeping the 2-D sin-cos table it was pre-trained with.

    python tools/export_image_student.py configs/image/amd_vit-s_mae-b-teacher_224_in1k.py \
        work_dirs/amd_vit-s_mae-b-teacher_224_in1k/epoch_800.pth \
        work_dirs/amd_vit-s_mae-b-teacher_224_in1k/student_mmaction.pth

(``tools/export_checkpoint.py`` rebuilds mmaction2's 1-D table, right for
video students, wrong for image ones.)
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import amd_mmaction  # noqa: E402,F401  (patches the stack, registers modules)
from mmengine.config import Config  # noqa: E402

from amd_mmaction.weights.io import add_trust_argument, trust_checkpoints  # noqa: E402
from amd_mmaction.transfer.image import export_image_student  # noqa: E402
from amd_mmaction.engine.cli import (add_force_argument, atomic_output,  # noqa: E402
                                     check_output, run_main)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='the image pre-training config (defines the student)')
    p.add_argument('checkpoint', help='its pre-training checkpoint')
    p.add_argument('out', help='load_from-ready file to write (backbone.* keys)')
    add_trust_argument(p)
    add_force_argument(p)
    args = p.parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    # never over the config or checkpoint, nor over an existing file without --force
    check_output(args.out, [args.config, args.checkpoint], args.force)
    student = Config.fromfile(args.config).model.student.to_dict()
    with atomic_output(args.out) as tmp:
        export_image_student(args.checkpoint, student, tmp)
    print(args.out)


if __name__ == '__main__':
    run_main(main)
