"""The course's nine explorers, one module each, on one base (``explorers.base.Explorer``):
controls -> ``compute(**settings)`` (data only) -> ``draw(data, settings)`` -> one PNG encoder, shown
as ``.widget``, redrawn without a browser by ``redraw(**overrides)``.

======  ===========================================  =========================
notebook  class                                       module
======  ===========================================  =========================
01      ``HiddenStateExplorer``                       ``explorers.hidden_state``
02      ``GradNormExplorer``                          ``explorers.grad_norm``
02      ``CliffExplorer``                             ``explorers.cliff``
03      ``ClippingExplorer``                          ``explorers.clipping_curves``
04      ``SpikeAlarmExplorer``                        ``explorers.spike_alarm``
05      ``RnnClippingExplorer``                       ``explorers.rnn_clipping`` (needs torch)
06      ``KerasClippingExplorer``                     ``explorers.keras_clipping``
07      ``GatesExplorer``                             ``explorers.gates`` (needs torch)
08      ``CapstoneExplorer``                          ``explorers.capstone`` (needs torch)
======  ===========================================  =========================

Import the module a notebook needs (``from gradlab.explorers.cliff import CliffExplorer``); this
package imports none of them itself, so that importing one explorer never pulls in torch. ``MODULES``
maps each class to its module and notebook.
"""

MODULES = {
    "HiddenStateExplorer": ("gradlab.explorers.hidden_state", "01"),
    "GradNormExplorer": ("gradlab.explorers.grad_norm", "02"),
    "CliffExplorer": ("gradlab.explorers.cliff", "02"),
    "ClippingExplorer": ("gradlab.explorers.clipping_curves", "03"),
    "SpikeAlarmExplorer": ("gradlab.explorers.spike_alarm", "04"),
    "RnnClippingExplorer": ("gradlab.explorers.rnn_clipping", "05"),
    "KerasClippingExplorer": ("gradlab.explorers.keras_clipping", "06"),
    "GatesExplorer": ("gradlab.explorers.gates", "07"),
    "CapstoneExplorer": ("gradlab.explorers.capstone", "08"),
}
