"""The command line (a contract: DESIGN.md; documented in docs/operations.md and
docs/rules.md). Parses arguments, calls a command, turns newsmon's errors into one
clear line each and the documented exit codes:

    0  the work ran (with --once, even if some sources or channels failed)
    1  anything else that stopped the command (and `rules check` finding errors)
    2  an invalid configuration or rule set
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.cli import (
    backtest_cmd,
    channels_cmd,
    migrate_cmd,
    review_cmd,
    rules_cmd,
    run_cmd,
    silence_cmd,
    stats_cmd,
    status_cmd,
)
from monitor.errors import ConfigError, NewsmonError, RuleSetError

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsmon", description="News monitoring and alerting daemon."
    )
    parser.add_argument("--version", action="version", version=f"newsmon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon in the foreground")
    _config_option(run)
    run.add_argument("--once", action="store_true",
                     help="one full cycle (poll every source, deliver everything due), then exit")
    run.add_argument("--log-level", default="INFO",
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(handler=run_cmd.run)

    rules = commands.add_parser("rules", help="check and test rule files")
    rule_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    check = rule_commands.add_parser("check", help="validate rule files and run their examples")
    check.add_argument("paths", nargs="*", metavar="PATH",
                       help="rule files or folders (default: the configuration's rules.paths,"
                            " else ./rules)")
    _config_option(check)
    check.set_defaults(handler=rules_cmd.check)
    test = rule_commands.add_parser("test", help="match articles against rules and explain")
    test.add_argument("rules", metavar="RULES", help="a rule file or a folder of them")
    test.add_argument("input", metavar="INPUT",
                      help="JSON Lines of articles, a feed file, or a plain text file")
    test.add_argument("--json", action="store_true", help="one JSON object per match")
    test.add_argument("--explain", action="store_true",
                      help="also say, for rules that did not match, which clause failed")
    test.set_defaults(handler=rules_cmd.test)
    review = rule_commands.add_parser(
        "review", help="review one rule's recent hits and near misses; answers become examples",
        description="Show the stored articles a rule matches now, and those it nearly matches,"
                    " one at a time, and ask whether the rule is right about each: the answers"
                    " are added to the rule's examples.match or examples.no_match in its own"
                    " file, and the examples are checked again. Answers are read from standard"
                    " input, one line each.")
    review.add_argument("rule", metavar="RULE", help="the rule's id")
    review.add_argument("--since", type=backtest_cmd.duration, default="7d", metavar="DURATION",
                        help="articles published in this last period (default: 7d)")
    _config_option(review)
    review.set_defaults(handler=review_cmd.review)

    backtest = commands.add_parser(
        "backtest", help="replay stored articles through the current (and proposed) rules",
        description="Match the stored articles of a recent period against the configured rules"
                    " and, with --rules, against a proposed rule set: hits per rule, and the"
                    " articles a change adds and removes.")
    backtest.add_argument("--since", type=backtest_cmd.duration, default="30d",
                          metavar="DURATION",
                          help="articles published (or, without a date, fetched) in this last"
                               " period (default: 30d)")
    backtest.add_argument("--rules", metavar="PATH",
                          help="the proposed rule set: a rule file or a folder of them")
    _config_option(backtest)
    backtest.add_argument("--json", action="store_true", help="one JSON object per rule")
    backtest.set_defaults(handler=backtest_cmd.run)

    channels = commands.add_parser("channels", help="check channels")
    channel_commands = channels.add_subparsers(dest="channels_command", required=True,
                                               metavar="COMMAND")
    channel_test = channel_commands.add_parser(
        "test", help="send a test alert to one channel and report the result")
    channel_test.add_argument("name", metavar="NAME", help="the channel's name")
    _config_option(channel_test)
    channel_test.set_defaults(handler=channels_cmd.test)

    move = commands.add_parser(
        "migrate", help="move a whole state to another database (e.g. SQLite to PostgreSQL)",
        description="Copy everything newsmon remembers (sources, articles, stories, hits, the"
                    " outbox with its sent history, channel state, silences) from one database to"
                    " another,"
                    " e.g. a single node's SQLite file to the PostgreSQL database several nodes"
                    " will share. Stop the daemon first. The source is upgraded to the current"
                    " schema first, as `newsmon run` would. A target that already holds a state"
                    " is refused unless --replace is given.")
    move.add_argument("--from", dest="source", required=True, metavar="URL",
                      help="the database to copy from, e.g. sqlite:///newsmon.db")
    move.add_argument("--to", dest="target", required=True, metavar="URL",
                      help="the database to copy into, e.g. postgresql://newsmon@db/newsmon")
    move.add_argument("--replace", action="store_true",
                      help="delete the state the target holds before copying")
    move.set_defaults(handler=migrate_cmd.migrate)

    status = commands.add_parser("status",
                                 help="nodes, sources, outbox, silences and rules at a glance")
    _config_option(status)
    status.add_argument("--json", action="store_true",
                        help="one JSON object (its shape: docs/operations.md)")
    status.set_defaults(handler=status_cmd.status)

    stats = commands.add_parser(
        "stats", help="hits per rule per day, the noisiest and the silent rules",
        description="What a rule author needs to tune: each rule's hits per day over a recent"
                    " period (with a sparkline), the noisiest rules, and the rules that had"
                    " no hit at all.")
    stats.add_argument("--since", type=backtest_cmd.duration, default="7d", metavar="DURATION",
                       help="hits recorded in this last period (default: 7d)")
    _config_option(stats)
    stats.add_argument("--json", action="store_true", help="one JSON object")
    stats.set_defaults(handler=stats_cmd.stats)

    _silence_parser(commands)
    return parser


def _silence_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    silence = commands.add_parser("silence", help="mute a rule, source or channel for a while")
    silence_commands = silence.add_subparsers(dest="silence_command", required=True,
                                              metavar="COMMAND")
    add = silence_commands.add_parser(
        "add", help="mute one rule, source or channel for a while",
        description="Alerts planned while a silence covers them, and alerts still waiting"
                    " in the outbox, are recorded (see `newsmon status`): with --then digest"
                    " they go to the channel's next digest (on a"
                    " channel without one, they are sent when the silence ends); with --then"
                    " drop they are kept as a record and never sent. Silences are stored in"
                    " the state database: they survive restarts and hold for every node.")
    which = add.add_mutually_exclusive_group(required=True)
    which.add_argument("--rule", metavar="RULE", help="a rule's id")
    which.add_argument("--source", metavar="SOURCE",
                       help="a source's name (its articles are still stored and matched)")
    which.add_argument("--channel", metavar="CHANNEL", help="a channel's name")
    add.add_argument("--for", dest="duration", type=backtest_cmd.duration, required=True,
                     metavar="DURATION", help="how long, e.g. 30m, 4h, 2d")
    add.add_argument("--reason", metavar="TEXT", help="why (shown in list and status)")
    add.add_argument("--then", choices=["digest", "drop"], default="digest",
                     help="what becomes of the covered alerts (default: digest)")
    _config_option(add)
    add.set_defaults(handler=silence_cmd.add)
    listing = silence_commands.add_parser("list", help="the active silences")
    listing.add_argument("--json", action="store_true", help="a JSON array")
    _config_option(listing)
    listing.set_defaults(handler=silence_cmd.list_)
    remove = silence_commands.add_parser("remove", help="end a silence now")
    remove.add_argument("id", type=int, metavar="ID", help="the silence's id (see list)")
    _config_option(remove)
    remove.set_defaults(handler=silence_cmd.remove)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help="configuration file (default: $NEWSMON_CONFIG, then ./newsmon.toml)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"newsmon: configuration error: {line}", file=sys.stderr)
        return EXIT_INVALID
    except RuleSetError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return EXIT_INVALID
    except NewsmonError as exc:
        print(f"newsmon: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    return code
