"""Prefixes for XPath in the AS4 tests (the core itself never looks elements up by prefix)."""

from accesspoint.core.as4 import ns

PHASE4_INFO = "urn:fdc:com.helger.phase4:ns:info"  # phase4's extension namespace in its receipts

NSMAP = {"S12": ns.S12, "eb": ns.EB, "ebbp": ns.EBBP, "wsse": ns.WSSE, "wsse11": ns.WSSE11, "wsu": ns.WSU,
         "ds": ns.DS, "ec": ns.EC, "xenc": ns.XENC, "xenc11": ns.XENC11}
