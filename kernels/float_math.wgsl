// f32 helpers of the element-wise kernels (elementwise.wgsl, webnn_elementwise.wgsl), shared through
// "//# include float_math" (see render in accelkit/backends/webgpu/wgsl.py).

// NaN by its bits: a shader compiler may assume no NaNs in float comparisons (WGSL allows it), so
// `x != x` or `!(x <= y)` cannot be trusted to see one.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// tanh that never turns into inf/inf = NaN: tanh(+-10) is +-1 in f32 already (NaN stays NaN).
fn tanh_safe(x: f32) -> f32 {
    return select(tanh(clamp(x, -10.0, 10.0)), x, is_nan(x));
}

// erf(x) = x * P(x^2) / Q(x^2) for |x| <= 4, saturating beyond (NaN stays NaN): the rational
// approximation of the CPU backend (accelkit/backends/cpu.py), same coefficients, same evaluation order.
fn erf_approx(x_in: f32) -> f32 {
    if (is_nan(x_in)) {
        return x_in;
    }
    let x = clamp(x_in, -4.0, 4.0);
    let x2 = x * x;
    var p = -2.72614225801306e-10;
    p = p * x2 + 2.77068142495902e-08;
    p = p * x2 + -2.10102402082508e-06;
    p = p * x2 + -5.69250639462346e-05;
    p = p * x2 + -7.34990630326855e-04;
    p = p * x2 + -2.95459980854025e-03;
    p = p * x2 + -1.60960333262415e-02;
    var q = -1.45660718464996e-05;
    q = q * x2 + -2.13374055278905e-04;
    q = q * x2 + -1.68282697438203e-03;
    q = q * x2 + -7.37332916720468e-03;
    q = q * x2 + -1.42647390514189e-02;
    return x * p / q;
}
