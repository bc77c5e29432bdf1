"""Write the tiny AVA-format data set used by configs/tiny/ava_tiny.py.

    python tools/make_ava_fixture.py --out data/ava_tiny
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from amd_mmaction.transfer.ava.fixture import make_ava_fixture  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/ava_tiny')
    parser.add_argument('--num-train', type=int, default=4, help='train videos')
    parser.add_argument('--num-val', type=int, default=2, help='val videos')
    parser.add_argument('--num-keyframes', type=int, default=3,
                        help='annotated seconds per video, from 902')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    info = make_ava_fixture(args.out, num_train=args.num_train,
                            num_val=args.num_val,
                            num_keyframes=args.num_keyframes, seed=args.seed)
    print(json.dumps(info, indent=1))
    if info['timestamp_end'] != 906:
        print(f"note: set timestamp_end={info['timestamp_end']} in the config "
              "(configs/tiny/ava_tiny.py assumes 3 keyframes: 906)")


if __name__ == '__main__':
    main()
