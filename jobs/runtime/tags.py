"""The one side output every operator uses for records bound to an output file/topic."""
from pyflink.common import Types
from pyflink.datastream import OutputTag

OUT = OutputTag("out", Types.PICKLED_BYTE_ARRAY())
