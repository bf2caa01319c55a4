require "reject";
reject text:
Your message was refused.
Goodbye.
.
;
