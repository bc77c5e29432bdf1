"""Write the demo motion data set as real video files.

    python tools/make_demo_data.py data/motion --num-train 120 --num-val 48
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from amd_mmaction.data.synthetic import CODECS, make_motion_dataset  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('root')
    p.add_argument('--num-train', type=int, default=120)
    p.add_argument('--num-val', type=int, default=48)
    p.add_argument('--num-frames', type=int, default=24)
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--ext', default='webm', choices=sorted(CODECS))
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    t0 = time.time()
    out = make_motion_dataset(a.root, a.num_train, a.num_val, a.num_frames, a.size, a.ext, a.seed)
    print(f'wrote {a.num_train}+{a.num_val} .{a.ext} clips under {out["root"]} '
          f'in {time.time() - t0:.1f}s; annotations {out["train"]}, {out["val"]}')


if __name__ == '__main__':
    main()
