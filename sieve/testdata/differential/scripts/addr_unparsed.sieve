# Address fields whose values hold no usable address (RFC 5228 5.1 leaves them to the
# implementation): Pigeonhole tests such a value whole, with :all only, and counts it.
require ["fileinto", "variables", "relational", "comparator-i;ascii-numeric", "subaddress"];
if address :count "eq" :comparator "i;ascii-numeric" "cc" "1" { fileinto "CcOne"; }
if address :all :is "bcc" "foo bar <>" { fileinto "BccWhole"; }
if address :localpart :matches "bcc" "*" { fileinto "BccLocal"; }
if address :domain :is "reply-to" "" { fileinto "ReplyToEmpty"; }
if address :is "sender" "x@" { fileinto "SenderWhole"; }
if address :detail :count "eq" :comparator "i;ascii-numeric" "resent-to" "2" { fileinto "DetailCountTwo"; }
if address :all :matches "to" "*" { fileinto "To-${0}"; }
