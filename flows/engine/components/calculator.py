"""Calculator: arithmetic on an expression, read with ``ast`` and evaluated node by node.

Never ``eval``: the expression is parsed, and only numbers, ``+ - * / ** %`` (binary), unary
``+``/``-`` and parentheses are accepted; a name, a call, an attribute, a string, anything else
is refused. Every bound holds before work is done: the expression's length
(MAX_EXPRESSION_CHARS) and size (MAX_NODES), and the numbers themselves, which are floats as in
Langflow's Calculator, so ``9**9**9`` overflows at once instead of building a huge integer. The
evaluation walks the tree with an explicit stack (no recursion). The answer is Langflow's Data
``{"result": "16"}`` (at most six decimals); an expression that cannot be computed is a 422
naming the node, which an agent reads as the tool's answer.
"""

from __future__ import annotations

import ast
import math
import operator

from .base import Component, register

MAX_EXPRESSION_CHARS = 1000
MAX_NODES = 500

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_SYMBOLS = {ast.BitXor: "^", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
            ast.BitAnd: "&", ast.BitOr: "|", ast.Invert: "~", ast.Not: "not"}


class CalculationError(ValueError):
    """The expression cannot be computed; ``str()`` says why, for the user or the model."""


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression; raise CalculationError."""
    if not isinstance(expression, str) or not expression.strip():
        raise CalculationError("is empty: give an arithmetic expression such as 4*4*(33/22)+12-20")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculationError("is not a valid arithmetic expression") from None
    nodes = list(ast.walk(tree.body))
    if len(nodes) > MAX_NODES:
        raise CalculationError(f"has more than {MAX_NODES} numbers and operators")
    for node in nodes:
        _allowed(node)
    return _compute(tree.body)


def _allowed(node: ast.AST) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise CalculationError(f"may contain only numbers, not {node.value!r}"[:200])
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise CalculationError(f"uses the operator {_SYMBOLS.get(type(node.op), type(node.op).__name__)}: "
                                   "only + - * / ** % are allowed")
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise CalculationError(f"uses the operator {_SYMBOLS.get(type(node.op), type(node.op).__name__)}: "
                                   "only + - * / ** % are allowed")
    elif not isinstance(node, (ast.operator, ast.unaryop)):
        raise CalculationError(f"may contain only numbers, + - * / ** % and parentheses "
                               f"(found {type(node).__name__.lower()})")


def _compute(root: ast.expr) -> float:
    """Post-order over an explicit stack: each node's value once its operands have theirs
    (``evaluate`` has checked that every node is a number, a BinOp or a UnaryOp)."""
    values: list[float] = []
    stack: list[tuple[ast.expr, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if isinstance(node, ast.Constant):
            values.append(_number(node.value))
        elif isinstance(node, ast.BinOp):
            if ready:
                right, left = values.pop(), values.pop()
                values.append(_apply(_BINARY[type(node.op)], left, right))
            else:
                stack += [(node, True), (node.right, False), (node.left, False)]
        elif isinstance(node, ast.UnaryOp):
            if ready:
                values.append(_apply(_UNARY[type(node.op)], values.pop()))
            else:
                stack += [(node, True), (node.operand, False)]
    return values[0]


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalculationError("may contain only numbers")
    try:
        number = float(value)
    except OverflowError:
        raise CalculationError("has a number too large to compute with") from None
    if not math.isfinite(number):
        raise CalculationError("has a number too large to compute with")
    return number


def _apply(function, *operands: float) -> float:
    try:
        result = function(*operands)
    except ZeroDivisionError:
        raise CalculationError("divides by zero") from None
    except OverflowError:
        raise CalculationError("has a result too large to compute") from None
    if isinstance(result, complex):
        raise CalculationError("has no real result (a negative number to a fractional power)")
    if not math.isfinite(result):
        raise CalculationError("has a result too large to compute")
    return result


def formatted(value: float) -> str:
    """Langflow's rendering: six decimals at most, trailing zeros dropped."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@register("CalculatorComponent")
class Calculator(Component):
    outputs = {"result": "evaluate_expression"}
    tool_outputs = {"evaluate_expression": "result"}

    def evaluate_expression(self) -> dict:
        expression = self.text("expression")
        try:
            return {"result": formatted(evaluate(expression))}
        except CalculationError as error:
            raise self.fail("expression", str(error)) from None
