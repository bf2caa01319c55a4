require ["include", "fileinto"];
include "stops";
fileinto "NotReached";
